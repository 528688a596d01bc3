# The real servers of one protocol (iomux shootout): server CPU per request and requests/s, a bar
# per server, grouped by load. Variables (gnuplot -e): term, gpdir, out, t (the title), f (data
# file: block 0 CPU µs per request, block 1 requests/s; a row per load, a column per server, the
# header row naming them), n (number of server columns), l (the line type of each column).
load gpdir.'/style.gp'
eval sprintf("set terminal %s size 1400,600 %s", term, fontspec)
set output out
set multiplot layout 1, 2 title t." (median of the runs)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics nomirror rotate by 30 right noenhanced
set grid noxtics ytics mytics
set logscale y
set yrange [*:*]
unset key
set title "server CPU per request (µs, user + system; lower is better)"
set ylabel "µs per request"
set format y "%g"
plot for [i = 2:n + 1] f index 0 using i:xtic(1) lt int(word(l, i - 1)) title columnheader(i)
set key
set title "requests/s"
set ylabel "requests/s"
set format y "%.0s%c"
plot for [i = 2:n + 1] f index 1 using i:xtic(1) lt int(word(l, i - 1)) title columnheader(i)
unset multiplot
