# A package, so that unit test modules are imported as ``unit.test_store`` etc. and never
# clash with integration test modules of the same file name (pytest's default import mode).
