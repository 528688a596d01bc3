#!/bin/sh
# Re-renders the real servers' charts; run from the shootout's output directory.
set -e
gnuplot -e 'term='\''pngcairo'\''; gpdir='\''data'\''; f='\''data/real_resp.dat'\''; l='\''16 7 8 10 6 2'\''; n=6; t='\''RESP: iomux vs redis-server, loaded by redis-benchmark'\''; out='\''real_resp.png'\''' data/real_servers.gp
gnuplot -e 'term='\''pngcairo'\''; gpdir='\''data'\''; f='\''data/real_http.dat'\''; l='\''17 18 7 8 10 6 2'\''; n=7; t='\''HTTP/1.1: iomux vs nginx and h2o, loaded by wrk'\''; out='\''real_http.png'\''' data/real_servers.gp
