#!/bin/sh
# Re-renders the charts; run from the shootout's output directory.
set -e
gnuplot -e 'term='\''pngcairo'\''; gpdir='\''data'\''; nw=3; f1='\''data/conns_ack64.dat'\''; t1='\''64 B ack'\''; l1='\''1 2 3 4 5 6 7 8 9 10 11 12 13 14'\''; f2='\''data/conns_echo64.dat'\''; t2='\''64 B echo'\''; l2='\''1 2 3 4 5 6 7 8 9 10 11 12 13 14'\''; f3='\''data/conns_echo16k.dat'\''; t3='\''16 KiB echo'\''; l3='\''1 2 3 4 5 6 7 8 9 10 11 12 13 14'\''; out='\''rps_vs_connections.png'\''' data/rps_vs_connections.gp
gnuplot -e 'term='\''pngcairo'\''; gpdir='\''data'\''; nw=3; f1='\''data/conns_ack64.dat'\''; t1='\''64 B ack'\''; l1='\''1 2 3 4 5 6 7 8 9 10 11 12 13 14'\''; f2='\''data/conns_echo64.dat'\''; t2='\''64 B echo'\''; l2='\''1 2 3 4 5 6 7 8 9 10 11 12 13 14'\''; f3='\''data/conns_echo16k.dat'\''; t3='\''16 KiB echo'\''; l3='\''1 2 3 4 5 6 7 8 9 10 11 12 13 14'\''; out='\''p99_vs_connections.png'\''' data/p99_vs_connections.gp
gnuplot -e 'term='\''pngcairo'\''; gpdir='\''data'\''; f='\''data/idle_ack64.dat'\''; l='\''2 3 4 5 6 7 8 9 10 11 12 13 14'\''; xt='\''("0" 100, "1k" 1100, "10k" 10100, "15k" 15100)'\''; out='\''cpu_vs_idle.png'\''' data/cpu_vs_idle.gp
gnuplot -e 'term='\''pngcairo'\''; gpdir='\''data'\''; f='\''data/conns_ack64.dat'\''; l='\''1 2 3 4 5 6 7 8 9 10 11 12 13 14'\''; out='\''rss_per_connection.png'\''' data/rss_per_connection.gp
