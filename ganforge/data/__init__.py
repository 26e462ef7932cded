"""Data: reading images, image folders as in-memory datasets, items with fields, data order,
and the datasets ganforge can fetch."""
