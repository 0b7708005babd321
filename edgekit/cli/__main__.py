from edgekit.cli import main

if __name__ == "__main__":  # imported (by a documentation tool, say) it runs nothing
    main()
