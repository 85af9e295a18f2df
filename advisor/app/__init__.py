"""The application: the CLI and its commands, the questionnaire, the runner and the renderers."""
