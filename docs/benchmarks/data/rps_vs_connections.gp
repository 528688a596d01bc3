# Requests/s against active connections, one panel per workload (iomux shootout).
# Variables (gnuplot -e): term, gpdir, out, nw = number of panels; for w in 1..nw:
#   f<w> the data file (data/conns_<workload>.dat), t<w> its title, l<w> the line type of each
#   block in f<w>, space-separated. Columns: connections rps cpu_us_per_req p99_us ...
load gpdir.'/style.gp'
eval sprintf("set terminal %s size %d,560 %s", term, 560 * nw + 180, fontspec)
set output out
set multiplot layout 1, nw title "Requests/s vs active connections (median of the repeats, no idle connections)"
set logscale xy
set xlabel "active connections"
set ylabel "requests/s"
do for [w = 1:nw] {
  f = value(sprintf("f%d", w))
  lts = value(sprintf("l%d", w))
  set title value(sprintf("t%d", w))
  if (w < nw) { unset key } else { set key }
  plot for [i = 0:words(lts) - 1] f index i using 1:2 with linespoints lt int(word(lts, i + 1)) title columnheader(1)
}
unset multiplot
