import sys

from keras_nets.cli import main

sys.exit(main())
