# p99 latency against active connections, one panel per workload (iomux shootout).
# Variables: as rps_vs_connections.gp. Column 4 of the data is the p99 latency in microseconds.
load gpdir.'/style.gp'
eval sprintf("set terminal %s size %d,560 %s", term, 560 * nw + 180, fontspec)
set output out
set multiplot layout 1, nw title "p99 latency vs active connections (median of the repeats, no idle connections)"
set logscale xy
set xlabel "active connections"
set ylabel "p99 latency (µs)"
do for [w = 1:nw] {
  f = value(sprintf("f%d", w))
  lts = value(sprintf("l%d", w))
  set title value(sprintf("t%d", w))
  if (w < nw) { unset key } else { set key }
  plot for [i = 0:words(lts) - 1] f index i using 1:4 with linespoints lt int(word(lts, i + 1)) title columnheader(1)
}
unset multiplot
