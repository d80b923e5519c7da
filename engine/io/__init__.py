"""Reading and writing NIfTI, ACDC, M&Ms and generic label folders."""
