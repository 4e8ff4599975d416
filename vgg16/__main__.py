from vgg16.cli import main

raise SystemExit(main())
