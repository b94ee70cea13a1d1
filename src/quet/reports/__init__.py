"""Official reports: the campaign form (the seeds' appendix) and the centre's monthly technical
report, as plain documents (`document`) rendered to DOCX, XLSX and PDF."""
