"""What the tabs share: presets, the visitor's service, the shipped question sets,
Markdown helpers and the background worker."""
