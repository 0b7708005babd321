"""Export formats: each module registers one `Exporter` in `edgekit.export.base.EXPORTERS`."""
