"""`maskgit demo`: a local web page to paint a hole and watch MaskGIT fill it step by step (docs/demo.md)."""
