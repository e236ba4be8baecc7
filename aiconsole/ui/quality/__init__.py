"""Streamlit pages and panels of the Quality area: the page and its tabs (review, and later analytics,
batch corrections, ground truth)."""
