import sys

from keras_robult_cli import main

sys.exit(main())
