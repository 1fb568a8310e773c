from thinkjson_edge.cli import main

main()
