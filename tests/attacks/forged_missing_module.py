# A cell of a notebook given alone (tests/test_file_formats.py): an import error whose module name
# is a path, so that "its module is beside the file" would point at the folder above, or anywhere.
raise ModuleNotFoundError("No module named '..'")
