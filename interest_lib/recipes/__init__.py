"""The book's recipes: the cache, the protocol set-up, one module per chapter that needs one,
plots, the real-data pipeline and classroom tools. Imports everything below it."""
