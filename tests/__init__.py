# A regular package, so that `tests.nbval_numbers` (make nbval's plugin) is this folder's: robustbench 1.1.1's
# wheel installs a top-level `tests` package into site-packages, which would shadow a namespace package here.
