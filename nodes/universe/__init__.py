"""The universe node: securities and their daily prices (core board)."""
