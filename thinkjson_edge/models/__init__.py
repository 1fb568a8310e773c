"""Which GGUF to run (``choice``), the model store (``store``), reading GGUF files (``gguf``)."""
