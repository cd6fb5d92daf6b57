"""Reports: Markdown summaries now; HTML, plots and nightly trends build on the same summary dict."""
