from signvideo.cli import main

raise SystemExit(main())
