"""The ingestor: one module per exchange in `venues/`, parsing frames into ticks."""
