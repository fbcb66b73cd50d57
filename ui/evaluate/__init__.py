"""The Evaluate tab: run a question set, read the results, review the citations."""
