from tune_mlp.search.cli import main

raise SystemExit(main())
