from mlx_gen.cli import main

raise SystemExit(main())
