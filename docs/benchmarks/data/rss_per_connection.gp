# Server resident memory per connection against active connections, 64 B ack, no idle
# connections (iomux shootout). Variables: term, gpdir, out, f (data/conns_ack64.dat), l (line
# type per block). Column 5 is the server's RSS divided by the connections, in KiB: at one
# connection it is the whole process, at 10,000 it approaches the per-connection cost.
load gpdir.'/style.gp'
eval sprintf("set terminal %s size 900,560 %s", term, fontspec)
set output out
set title "Server resident memory per connection (RSS / connections; 64 B ack, median of the repeats)"
set logscale xy
set xlabel "active connections"
set ylabel "RSS per connection (KiB)"
plot for [i = 0:words(l) - 1] f index i using 1:5 with linespoints lt int(word(l, i + 1)) title columnheader(1)
