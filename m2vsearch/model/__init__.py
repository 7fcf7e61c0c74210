"""The static embedding model: format, encoding, distillation."""
