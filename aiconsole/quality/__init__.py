"""Quality Control: the review queue, reviewer decisions, ground truth, agreement and calibration."""
