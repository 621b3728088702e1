"""Statistical models of the SAP (section 7): one function per model, each a ModelResult."""
