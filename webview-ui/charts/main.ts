// The charts webview: being written.
