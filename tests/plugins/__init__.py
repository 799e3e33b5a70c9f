"""Third-party packages written against evobench's public API, used by the tests."""
