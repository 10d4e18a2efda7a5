"""The pieces of the weight-free segmenter (`segmenters.grabcut.GrabCutSegmenter`): regions
grown from the clicks, their outlines refined, and one score that ranks every candidate."""
