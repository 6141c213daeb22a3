"""The application: the console scripts (`spikeclip-export`, -train, -eval, -energy, -convert),
the export stages, exit codes and output folders. Composes every other package; nothing imports it.
"""
