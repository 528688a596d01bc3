# Server CPU per request against idle connections, 64 B ack with 100 active connections
# (iomux shootout). Variables: term, gpdir, out, f (data/idle_ack64.dat), l (line type per
# block), xt (the x tics: idle counts placed at 100 + idle). Columns: open_connections idle rps
# cpu_us_per_req p99_us rss_kib_per_conn. x is log-scaled over the open connections (100 +
# idle), so the 0-idle point has a place on the axis; the tics show the idle count.
load gpdir.'/style.gp'
eval sprintf("set terminal %s size 900,560 %s", term, fontspec)
set output out
set title "Server CPU per request vs idle connections (64 B ack, 100 active; median of the repeats)"
set logscale x
set logscale y
set xlabel "idle connections (besides the 100 active ones)"
set ylabel "server CPU per request (µs, user + system)"
if (strlen(xt) > 0) { eval "set xtics ".xt }
set format x "%g"
set xrange [70:*]
set offsets 0, graph 0.08, 0, 0
plot for [i = 0:words(l) - 1] f index i using 1:4 with linespoints lt int(word(l, i + 1)) title columnheader(1)
