"""Segmentation service: smart masks from clicked points and boxes (FastSAM or classical)."""
