// The labeling webview: being written.
