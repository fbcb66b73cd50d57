"""Review citations: a panel of fixed components, keyboard-first, that loses no rating."""
