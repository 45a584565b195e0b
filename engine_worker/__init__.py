"""The engine: top of book, fee-aware spread detection and the signal lifecycle (pure), and its shells."""
