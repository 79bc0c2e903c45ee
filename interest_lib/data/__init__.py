"""Data: the event schema, the simulator and its oracle, loaders, dirt, cleaning, the time
split, features and the prediction tasks. Imports nothing else of the package."""
