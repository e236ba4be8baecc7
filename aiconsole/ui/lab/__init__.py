"""The Testing Lab page and its tabs."""
