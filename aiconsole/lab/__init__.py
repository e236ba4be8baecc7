"""Testing Lab: run prompts and models on photos before they ship."""
