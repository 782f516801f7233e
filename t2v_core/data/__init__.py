"""Training clips and evaluation first frames: LAMP's (paper), synthetic (tests), or drawn by a
plugin's data source (the demo's toy world); their checks."""
