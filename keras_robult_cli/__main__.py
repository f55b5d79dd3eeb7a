import sys

from keras_robult_cli.main import main

sys.exit(main())
