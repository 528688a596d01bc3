# The shared look of the `iomux shootout` charts, loaded by the other scripts.
# Expects `term` ('pngcairo' or 'png'; `iomux shootout` checks which one this gnuplot has).
# Line types: 1-10 are the iomux models in ladder order (blocking ... uring), solid;
# 11-15 the peer servers, dashed, with the floor (11) in black; 16-18 the real servers the RESP
# and HTTP sections compare with (redis-server, nginx, h2o), in greys.
if (!exists("term")) term = 'pngcairo'
fontspec = (term eq 'pngcairo') ? 'font "sans,9"' : ''
set linetype 1  lc rgb '#8c564b' lw 1.5 pt 1  ps 1.1 dt 1
set linetype 2  lc rgb '#e377c2' lw 1.5 pt 2  ps 1.1 dt 1
set linetype 3  lc rgb '#bcbd22' lw 1.5 pt 3  ps 1.1 dt 1
set linetype 4  lc rgb '#7f7f7f' lw 1.5 pt 4  ps 1.1 dt 1
set linetype 5  lc rgb '#ff7f0e' lw 1.5 pt 5  ps 1.1 dt 1
set linetype 6  lc rgb '#2ca02c' lw 1.5 pt 6  ps 1.1 dt 1
set linetype 7  lc rgb '#1f77b4' lw 2.5 pt 7  ps 1.1 dt 1
set linetype 8  lc rgb '#17becf' lw 1.5 pt 8  ps 1.1 dt 1
set linetype 9  lc rgb '#9467bd' lw 1.5 pt 9  ps 1.1 dt 1
set linetype 10 lc rgb '#d62728' lw 2.5 pt 11 ps 1.1 dt 1
set linetype 11 lc rgb '#000000' lw 2.5 pt 13 ps 1.1 dt 2
set linetype 12 lc rgb '#637939' lw 1.5 pt 12 ps 1.1 dt 3
set linetype 13 lc rgb '#3182bd' lw 1.5 pt 14 ps 1.1 dt 4
set linetype 14 lc rgb '#e6550d' lw 1.5 pt 10 ps 1.1 dt 5
set linetype 15 lc rgb '#756bb1' lw 1.5 pt 15 ps 1.1 dt 2
set linetype 16 lc rgb '#252525' lw 1.5 pt 5  ps 1.1 dt 1
set linetype 17 lc rgb '#525252' lw 1.5 pt 7  ps 1.1 dt 1
set linetype 18 lc rgb '#a0a0a0' lw 1.5 pt 9  ps 1.1 dt 1
set grid xtics ytics mxtics mytics lc rgb '#dddddd'
set key outside right top vertical Left reverse noenhanced samplen 3 spacing 1.1
set format x "%.0s%c"
