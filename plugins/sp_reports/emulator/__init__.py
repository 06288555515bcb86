"""Local emulator of the Amazon Selling Partner API (LWA + Reports 2021-06-30 + Notifications v1 to SQS).

Entry points (import them from their modules; this package imports nothing so that
`sp_reports.cli` stays usable without FastAPI installed):

* ``sp_reports.emulator.app.create_app(config) -> FastAPI``
* ``sp_reports.emulator.config.EmulatorConfig`` - every knob, changeable at runtime via ``POST /_emulator/config``
* ``sp_reports.emulator.testing.running_emulator(**overrides)`` - context manager serving it on 127.0.0.1
* ``sp-reports emulator --port N ...`` - the command line
"""
