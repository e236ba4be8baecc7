"""Streamlit panels of the Pipeline Control area."""
