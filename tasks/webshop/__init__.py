"""WebShop (Yao et al., 2022): a simulated shop where an agent searches, browses and buys for an
instruction; the original reward; scripted and language-model agents; the ``webshop`` task."""
