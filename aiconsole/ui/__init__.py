"""Streamlit helpers shared by pages: the auth gate, the sidebar, confirmations, error display."""
