# Allocation-heavy shell work whose output must not depend on the allocator: arrays,
# associative arrays, string building and substitution, recursion, pipelines, subshells.
set -euo pipefail

declare -a arr
declare -A assoc
for ((i = 0; i < 20000; i++)); do
    arr+=("item-$i-$((i * 7 % 13))")
    assoc["k$((i % 5000))"]+="x"
done
echo "array ${#arr[@]} ${arr[12345]}"
echo "assoc ${#assoc[@]} ${#assoc[k42]}"

s=""
for ((i = 0; i < 5000; i++)); do s+="$i,"; done
echo "string ${#s}"
IFS=, read -ra parts <<< "$s"
echo "split ${#parts[@]} ${parts[4999]}"

first=$(printf '%s\n' "${arr[@]}" | sort -t- -k3,3n -k2,2n | sed -n '1,3p' | tr '\n' ' ')
echo "pipeline $first"

fact() {
    local x=$1
    if [ "$x" -le 1 ]; then echo 1; return; fi
    echo $((x * $(fact $((x - 1)))))
}
echo "recursion $(fact 20)"

count=0
for w in ${s//,/ }; do count=$((count + w % 3)); done
echo "sum $count"

lines=$(for i in $(seq 1 300); do echo "line $i"; done | wc -l)
echo "subshell $lines"

text="$(printf 'abc%.0s' {1..10000})"
replaced=${text//b/XY}
echo "replace ${#text} ${#replaced} ${replaced:0:12}"
