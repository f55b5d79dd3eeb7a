import sys

from keras_robult.cli import main

sys.exit(main())
