"""The Gradio tabs. Each module builds one tab and calls ``core``; none holds model logic."""
